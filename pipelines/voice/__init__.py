"""``voice_agent`` mode: live captions, end-of-turn detection, agent turns, barge-in."""
