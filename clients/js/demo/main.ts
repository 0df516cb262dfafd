// The demo page served at `/`: one ParleyClient at a time, connected with a short-lived
// token from `POST /v1/tokens`, showing captions, an agent chat, the connection's state
// and the session's latency figures.

import { CLIENT_VERSION, ParleyClient, UsageError, type Mode } from "@parley/client";
import { captureMicrophone, type MicCapture } from "@parley/client/mic";
import { fetchToken, peakLevel, streamUrl, Tokens } from "./connection.js";
import { FiguresView } from "./figures.js";
import { LatencyBook } from "./latency.js";
import { byId, CaptionsView, ChatView, StateView } from "./view.js";

const ui = {
  connectForm: byId("connect-form", HTMLFormElement),
  key: byId("api-key", HTMLInputElement),
  mode: byId("mode", HTMLSelectElement),
  diarization: byId("diarization", HTMLInputElement),
  connect: byId("connect", HTMLButtonElement),
  end: byId("end", HTMLButtonElement),
  captionsPanel: byId("captions-panel", HTMLElement),
  chatPanel: byId("chat-panel", HTMLElement),
  mic: byId("mic", HTMLButtonElement),
  level: byId("level", HTMLMeterElement),
  chatForm: byId("chat-form", HTMLFormElement),
  message: byId("message", HTMLInputElement),
  send: byId("send", HTMLButtonElement),
  cancel: byId("cancel", HTMLButtonElement),
  server: byId("server-info", HTMLElement),
};

const stateView = new StateView(byId("state", HTMLElement), byId("history", HTMLOListElement));
const captions = new CaptionsView(byId("captions", HTMLOListElement), byId("speech", HTMLElement));
const chat = new ChatView(byId("chat", HTMLOListElement));
const figuresView = new FiguresView(document);

interface Live {
  client: ParleyClient;
  tokens: Tokens;
  book: LatencyBook;
  mic: MicCapture | null;
  micStarting: boolean;
  texts: number;
}

let live: Live | null = null;

const usesAudio = (mode: string) => mode === "caption" || mode === "voice_agent";
const usesChat = (mode: string) => mode === "agent" || mode === "voice_agent";

function showMode(): void {
  const mode = ui.mode.value;
  ui.captionsPanel.hidden = !usesAudio(mode);
  ui.chatPanel.hidden = !usesChat(mode);
  ui.diarization.disabled = live !== null || !usesAudio(mode);
}

function refreshControls(): void {
  const connected = live !== null;
  ui.connect.disabled = connected;
  ui.end.disabled = !connected;
  ui.key.disabled = connected;
  ui.mode.disabled = connected;
  showMode();
  ui.mic.disabled = !connected || live?.micStarting === true;
  const recording = live?.mic != null;
  ui.mic.setAttribute("aria-pressed", String(recording));
  ui.mic.textContent = recording ? "Stop microphone" : "Start microphone";
  ui.send.disabled = !connected;
  ui.cancel.disabled = !connected || live!.client.activeTurns().length === 0;
}

/** Shows the figures of the current session, if there is one. */
function refreshFigures(): void {
  if (live !== null) figuresView.render(live.book);
}

function wire(session: Live): void {
  const { client, book, tokens } = session;
  const now = () => performance.now();
  client.on("state", ({ state, closeCode, closeReason }) => {
    const detail = state === "closed" && closeCode !== undefined ? `code ${closeCode}${closeReason ? " " + closeReason : ""}` : "";
    stateView.show(state, detail);
    if (state === "closed") void finish(session);
    refreshControls();
  });
  client.on("welcome", (w) => {
    book.connect.add(now() - tokens.attemptAt);
    ui.server.textContent = `Parley ${w.server.version ?? "?"} · node ${w.server.node ?? "?"} · session ${w.session_id.slice(0, 8)}`;
    refreshFigures();
  });
  client.on("speech.started", () => captions.speech(true));
  client.on("speech.stopped", () => captions.speech(false));
  client.on("caption.partial", (m) => {
    captions.partial(m);
    book.caption("partial", m.end, now());
    refreshFigures();
  });
  client.on("caption.final", (m) => {
    captions.final(m);
    book.caption("final", m.end, now());
    refreshFigures();
  });
  client.on("speaker.merged", (m) => captions.merged(m.merged, m.into));
  client.on("turn.started", (m) => {
    chat.started(m);
    book.turnStarted(m.turn_id, m.input_id);
    refreshControls();
  });
  client.on("token", (m) => {
    if (chat.token(m)) {
      book.firstTokenOf(m.turn_id, now());
      refreshFigures();
    }
  });
  client.on("tool.call", (m) => chat.toolCall(m));
  client.on("tool.result", (m) => chat.toolResult(m));
  client.on("turn.done", (m) => {
    chat.done(m);
    book.turnDone(m.timings);
    refreshControls();
    refreshFigures();
  });
  client.on("pong", (p) => {
    if (p.rtt_ms !== null) book.rtt.add(p.rtt_ms);
    refreshFigures();
  });
  client.on("goaway", (g) => stateView.note(`server draining (${g.reason}): moving in ${g.reconnect_after_ms} ms`));
  client.on("audio.dropped", (gap) => stateView.note(`audio chunks ${gap.from}–${gap.to - 1} were lost while offline`, "error"));
  client.on("error", (e) => {
    if (e.code === "session_replaced") book.audio.reset();
    stateView.note(`${e.source} ${e.code}: ${e.message}`, e.fatal ? "error" : "info");
  });
}

async function connect(): Promise<void> {
  const key = ui.key.value.trim() || "dev";
  const mode = ui.mode.value as Mode;
  ui.connect.disabled = true;
  const startedAt = performance.now();
  let token: string;
  try {
    token = await fetchToken(key);
  } catch (err) {
    stateView.note(`no token: ${(err as Error).message}`, "error");
    ui.connect.disabled = false;
    return;
  }
  const tokens = new Tokens(key, token, startedAt);
  const client = new ParleyClient({
    url: streamUrl(),
    token: () => tokens.next(),
    session: {
      mode,
      diarization: usesAudio(mode) && ui.diarization.checked,
      client: { name: "parley-demo", version: CLIENT_VERSION },
    },
  });
  const session: Live = { client, tokens, book: new LatencyBook(), mic: null, micStarting: false, texts: 0 };
  live = session;
  captions.clear();
  chat.clear();
  figuresView.clear();
  wire(session);
  client.connect();
  refreshControls();
}

async function stopMic(session: Live, endAudio: boolean): Promise<void> {
  const mic = session.mic;
  if (mic === null) return;
  session.mic = null;
  ui.level.value = 0;
  await mic.stop();
  if (endAudio && session.client.state !== "closed") session.client.endAudio();
}

async function finish(session: Live): Promise<void> {
  if (live === session) live = null;
  await stopMic(session, false);
  refreshControls();
}

async function toggleMic(): Promise<void> {
  const session = live;
  if (session === null || session.micStarting) return;
  if (session.mic !== null) {
    await stopMic(session, true);
    refreshControls();
    return;
  }
  session.micStarting = true;
  refreshControls();
  try {
    const mic = await captureMicrophone(
      {
        sendAudio: (pcm) => {
          if (session.client.state === "closed") return;
          session.book.audio.sent(pcm.byteLength, performance.now());
          ui.level.value = peakLevel(pcm);
          session.client.sendAudio(pcm);
          refreshFigures();
        },
      },
      { chunkMs: 50 },
    );
    // The session may have ended while the browser asked for the microphone.
    if (live !== session) {
      await mic.stop();
      return;
    }
    session.mic = mic;
    stateView.note(`microphone on (${mic.inputRate} Hz, sent as 16 kHz)`);
  } catch (err) {
    stateView.note(`microphone: ${(err as Error).message}`, "error");
  } finally {
    session.micStarting = false;
    refreshControls();
  }
}

function sendMessage(): void {
  const session = live;
  const text = ui.message.value.trim();
  if (session === null || text === "") return;
  session.texts += 1;
  const id = `m${session.texts}`;
  try {
    session.client.sendText(text, id);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    stateView.note(err.message, "error");
    return;
  }
  session.book.textSent(id, performance.now());
  chat.user(text, id);
  ui.message.value = "";
}

ui.connectForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  void connect();
});
ui.end.addEventListener("click", () => {
  const session = live;
  if (session === null) return;
  void stopMic(session, true).then(() => session.client.bye());
});
ui.mode.addEventListener("change", showMode);
ui.mic.addEventListener("click", () => void toggleMic());
ui.chatForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  sendMessage();
});
ui.cancel.addEventListener("click", () => {
  const turn = live?.client.activeTurns().at(-1);
  if (turn !== undefined) live!.client.cancel(turn.turnId);
});
stateView.show("idle");
refreshControls();
