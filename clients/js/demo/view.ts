// What the page shows: captions, the chat, the connection's state. Each view owns one
// part of the document and is told what happened; none of them talks to the client.

import type {
  CaptionFinalMessage,
  CaptionPartialMessage,
  ConnectionState,
  ToolCallMessage,
  ToolResultMessage,
  TokenMessage,
  TurnDoneMessage,
  TurnStartedMessage,
} from "@parley/client";
import { formatMs, turnTimings } from "./latency.js";

const MAX_CAPTIONS = 500; // on screen; older ones are dropped from the page
const MAX_HISTORY = 50;

/** The element `#id`, which must be of `type`. */
export function byId<T extends HTMLElement>(id: string, type: { new (): T; prototype: T }): T {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`the page has no #${id} of the expected kind`);
  return el;
}

/** `h("p", {class: "x"}, "text")`: an element with attributes and text children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (string | Node)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, value);
  el.append(...children);
  return el;
}

/** Keeps a scrolled container at its bottom while new lines come, unless the reader scrolled up. */
function follow(box: HTMLElement, change: () => void): void {
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  change();
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function speakerHue(speaker: string): number {
  let hash = 0;
  for (const ch of speaker) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return hash % 360;
}

function speakerBadge(speaker: string): HTMLElement {
  const badge = h("span", { class: "speaker" }, speaker);
  badge.style.setProperty("--hue", String(speakerHue(speaker)));
  return badge;
}

export class CaptionsView {
  private readonly segments = new Map<number, HTMLLIElement>();

  constructor(
    private readonly list: HTMLOListElement,
    private readonly activity: HTMLElement,
  ) {}

  partial(msg: CaptionPartialMessage): void {
    // An empty partial withdraws one shown for sound that held no words.
    if (msg.text.trim() === "") {
      const shown = this.segments.get(msg.segment);
      if (shown?.dataset["state"] === "partial") {
        shown.remove();
        this.segments.delete(msg.segment);
      }
      return;
    }
    this.fill(this.item(msg.segment), "partial", msg.speaker, msg.text);
  }

  final(msg: CaptionFinalMessage): void {
    this.fill(this.item(msg.segment), "final", msg.speaker, msg.text);
  }

  /** Later evidence says two speakers are one: relabel what is on screen. */
  merged(merged: string, into: string): void {
    for (const li of this.segments.values()) {
      if (li.dataset["speaker"] === merged) {
        li.dataset["speaker"] = into;
        li.querySelector(".speaker")?.replaceWith(speakerBadge(into));
      }
    }
  }

  speech(speaking: boolean): void {
    this.activity.textContent = speaking ? "speech" : "silence";
    this.activity.dataset["speaking"] = String(speaking);
  }

  clear(): void {
    this.segments.clear();
    this.list.replaceChildren();
    this.activity.textContent = "";
  }

  private item(segment: number): HTMLLIElement {
    const known = this.segments.get(segment);
    if (known !== undefined) return known;
    const li = h("li", { "data-segment": String(segment) });
    // Segments normally come in order; one that does not goes where it belongs.
    const next = [...this.segments.entries()].find(([s]) => s > segment)?.[1] ?? null;
    follow(this.list, () => this.list.insertBefore(li, next));
    this.segments.set(segment, li);
    if (this.segments.size > MAX_CAPTIONS) {
      const oldest = Math.min(...this.segments.keys());
      this.segments.get(oldest)?.remove();
      this.segments.delete(oldest);
    }
    return li;
  }

  private fill(li: HTMLLIElement, state: "partial" | "final", speaker: string | null, text: string): void {
    li.dataset["state"] = state;
    const parts: Node[] = [];
    if (speaker !== null) {
      li.dataset["speaker"] = speaker;
      parts.push(speakerBadge(speaker));
    }
    parts.push(h("span", { class: "caption-text" }, text.trim()));
    follow(this.list, () => li.replaceChildren(...parts));
  }
}

interface TurnItem {
  li: HTMLLIElement;
  text: Text;
  status: HTMLElement;
  tools: HTMLUListElement;
  footer: HTMLElement;
}

export class ChatView {
  private readonly turns = new Map<string, TurnItem>();

  constructor(private readonly log: HTMLOListElement) {}

  user(text: string, id: string): void {
    const li = h("li", { class: "msg user", "data-input-id": id }, h("span", { class: "who" }, "you"), h("p", {}, text));
    follow(this.log, () => this.log.append(li));
  }

  started(msg: TurnStartedMessage): void {
    this.turn(msg.turn_id, msg.input);
  }

  /** Appends a token's text; true when it is the turn's first. */
  token(msg: TokenMessage): boolean {
    const item = this.turn(msg.turn_id);
    const first = item.text.length === 0;
    follow(this.log, () => item.text.appendData(msg.text));
    return first;
  }

  toolCall(msg: ToolCallMessage): void {
    const line = h("li", { "data-call-id": msg.call_id }, `${msg.name}(${JSON.stringify(msg.arguments)})`);
    follow(this.log, () => this.turn(msg.turn_id).tools.append(line));
  }

  toolResult(msg: ToolResultMessage): void {
    const item = this.turn(msg.turn_id);
    const line = item.tools.querySelector(`[data-call-id="${CSS.escape(msg.call_id)}"]`) ?? item.tools.appendChild(h("li"));
    const outcome = msg.ok ? JSON.stringify(msg.result ?? null) : `error ${msg.error?.code ?? ""}`;
    follow(this.log, () => line.append(` → ${outcome.length > 200 ? outcome.slice(0, 200) + "…" : outcome}`));
  }

  done(msg: TurnDoneMessage): void {
    const item = this.turn(msg.turn_id);
    const t = turnTimings(msg.timings);
    const figures = [
      t.ttft_ms !== undefined ? `first token ${formatMs(t.ttft_ms)}` : "",
      t.total_ms !== undefined ? `total ${formatMs(t.total_ms)}` : "",
      msg.usage.output_tokens > 0 ? `${msg.usage.output_tokens} tokens` : "",
    ];
    follow(this.log, () => {
      item.li.dataset["status"] = msg.status;
      item.status.textContent = msg.reason ? `${msg.status} (${msg.reason})` : msg.status;
      item.footer.textContent = figures.filter(Boolean).join(" · ");
    });
  }

  clear(): void {
    this.turns.clear();
    this.log.replaceChildren();
  }

  private turn(turnId: string, input?: string): TurnItem {
    const known = this.turns.get(turnId);
    if (known !== undefined) return known;
    const text = document.createTextNode("");
    const status = h("span", { class: "status" }, "streaming");
    const tools = h("ul", { class: "tools" });
    const footer = h("footer");
    const who = input === "speech" ? "agent (spoken turn)" : "agent";
    const li = h(
      "li",
      { class: "msg agent", "data-turn-id": turnId, "data-status": "streaming" },
      h("span", { class: "who" }, who, " · ", status),
      h("p", { class: "text" }, text),
      tools,
      footer,
    );
    follow(this.log, () => this.log.append(li));
    const item = { li, text, status, tools, footer };
    this.turns.set(turnId, item);
    return item;
  }
}

export class StateView {
  constructor(
    private readonly badge: HTMLElement,
    private readonly history: HTMLOListElement,
  ) {}

  show(state: ConnectionState, detail = ""): void {
    this.badge.textContent = state;
    this.badge.dataset["state"] = state;
    const time = new Date().toLocaleTimeString([], { hour12: false });
    const li = h("li", { "data-state": state }, h("time", {}, time), ` ${state}`, detail ? ` — ${detail}` : "");
    follow(this.history, () => this.history.append(li));
    while (this.history.children.length > MAX_HISTORY) this.history.firstElementChild?.remove();
  }

  note(text: string, kind: "info" | "error" = "info"): void {
    const time = new Date().toLocaleTimeString([], { hour12: false });
    const li = h("li", { class: kind }, h("time", {}, time), ` ${text}`);
    follow(this.history, () => this.history.append(li));
    while (this.history.children.length > MAX_HISTORY) this.history.firstElementChild?.remove();
  }
}
