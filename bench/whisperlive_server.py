"""Runs a WhisperLive server for ``bench/whisperlive_compare.py``, in its own virtual
environment (never Parley's), on a local faster-whisper model directory.

    /tmp/wl-venv/bin/python bench/whisperlive_server.py --port 9090 --model DIR

Offline by construction: the model is a directory (WhisperLive loads a directory
that holds a CTranslate2 model as is), and the Hugging Face hub is switched off before
WhisperLive is imported, so any attempt to download fails instead of fetching.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--model", required=True, help="a CTranslate2 Whisper directory")
    ap.add_argument("--max-clients", type=int, default=8)
    args = ap.parse_args()
    if not os.path.isfile(os.path.join(args.model, "model.bin")):
        sys.exit(f"no model.bin in {args.model}")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    from whisper_live.server import TranscriptionServer  # type: ignore[import-not-found]

    print(f"whisperlive listening on 127.0.0.1:{args.port}", flush=True)
    TranscriptionServer().run(
        "127.0.0.1",
        port=args.port,
        backend="faster_whisper",
        faster_whisper_custom_model_path=args.model,
        single_model=True,  # one model shared by all clients, as Parley does
        max_clients=args.max_clients,
        max_connection_time=3600,
    )


if __name__ == "__main__":
    main()
