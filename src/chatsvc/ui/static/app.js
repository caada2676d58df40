// The chatsvc chat page: plain ES modules, no build step, no external requests.
// It talks to the service's own API with the key kept in sessionStorage (never in the URL).

import { readEvents } from "./sse.js";

const KEY = "chatsvc.key";
const CHAT = "chatsvc.chat";
const eventKey = (chatId) => `chatsvc.lastEventId.${chatId}`;

const $ = (id) => document.getElementById(id);
const state = {
  key: sessionStorage.getItem(KEY),
  assistant: null, // the AssistantInfo being chatted with
  chat: null, // {id, uuid}
  controller: null, // AbortController of the stream being read
  bubble: null, // the assistant message being streamed
  references: [], // the sources of the answer being streamed (kept over a page reload)
  running: false,
};

// --- talking to the API ------------------------------------------------------------------

class ApiError extends Error {}

// A message for a person: one sentence (or more), ending with a full stop.
function sentence(text) {
  const trimmed = text.trim();
  return /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

function explain(status, body) {
  const detail = body && typeof body.detail === "string" ? body.detail : "";
  if (status === 401) return "The API key was not accepted. Check it and connect again.";
  if (status === 403) return sentence(detail || "This key may not do that; an admin key can");
  if (status === 404) return sentence(detail || "Not found: it may have been deleted");
  if (status === 409) return sentence(detail || "An answer is still being written; wait for it or press Stop");
  if (status === 413) return "The message is too long for the service.";
  if (status === 429) return "Too many requests; wait a moment and try again.";
  // A server-side failure's detail is for operators (it may name an internal generator and its
  // address): the page says what a person can do.
  if (status === 502 || status === 504) return failedAnswer(status);
  if (status >= 500) return `The service had a problem (${status}). Try again in a moment.`;
  return sentence(detail || `The request failed (${status})`);
}

// What a person reads when an answer failed (an `error` event, or a 502/504): never the
// upstream's own words, which name internal generators and hosts.
function failedAnswer(status) {
  if (status === 504) return "The assistant took too long to answer. Send your message again.";
  return "The assistant could not answer just now. Send your message again.";
}

// A source as a person names it: "faq:3 How do I reset my password?" is shown as its title.
function sourceName(source) {
  return String(source).replace(/^[a-z_]+:\d+\s+/, "");
}

async function api(method, path, body, extra = {}) {
  const headers = { "X-Api-Key": state.key, Accept: "application/json", ...(extra.headers || {}) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: extra.signal,
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError("The service cannot be reached. Is it running?");
  }
  if (!response.ok) {
    let payload = null;
    try { payload = await response.json(); } catch { /* not JSON */ }
    throw new ApiError(explain(response.status, payload));
  }
  return response;
}

function showError(message) {
  const alert = $("alert");
  alert.textContent = message;
  alert.hidden = false;
}

function clearError() {
  $("alert").hidden = true;
  $("alert").textContent = "";
}

// --- connecting and choosing an assistant ----------------------------------------------------

async function connect(key) {
  state.key = key;
  const response = await api("GET", "/assistants/info/?page_size=100");
  const page = await response.json();
  sessionStorage.setItem(KEY, key);
  $("connect").hidden = true;
  $("forget-key").hidden = false;
  renderAssistants(page.results);
  return page.results;
}

function renderAssistants(assistants) {
  const list = $("assistant-list");
  list.replaceChildren();
  if (assistants.length === 0) {
    const empty = document.createElement("li");
    empty.textContent = "No assistant yet: create one with POST /assistants/ (see the README).";
    list.append(empty);
  }
  for (const assistant of assistants) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "assistant-card";
    button.dataset.assistantId = assistant.id;
    const accent = assistant.colors && (assistant.colors.primaryColor || Object.values(assistant.colors)[0]);
    if (accent) button.style.setProperty("--accent", accent);
    if (assistant.logo) {
      const logo = document.createElement("img");
      logo.src = assistant.logo;
      logo.alt = "";
      button.append(logo);
    }
    const text = document.createElement("div");
    const name = document.createElement("strong");
    name.textContent = assistant.description;
    text.append(name);
    if (assistant.info) {
      const info = document.createElement("span");
      info.textContent = assistant.info;
      text.append(info);
    }
    button.append(text);
    button.addEventListener("click", () => startChat(assistant).catch((e) => showError(e.message)));
    item.append(button);
    list.append(item);
  }
  $("assistants").hidden = false;
  $("chat").hidden = true;
}

function applyAssistant(assistant) {
  state.assistant = assistant;
  const root = document.documentElement.style;
  const colors = assistant.colors || {};
  if (colors.primaryColor) root.setProperty("--primary", colors.primaryColor);
  if (colors.secondaryColor) root.setProperty("--secondary", colors.secondaryColor);
  $("chat-title").textContent = assistant.description;
  const logo = $("chat-logo");
  logo.hidden = !assistant.logo;
  if (assistant.logo) logo.src = assistant.logo;
  const input = $("composer-input");
  input.maxLength = assistant.max_msg_length;
  updateCounter();
  $("assistants").hidden = true;
  $("chat").hidden = false;
}

async function startChat(assistant) {
  clearError();
  const response = await api("POST", `/assistants/${assistant.id}/`, {});
  const chat = await response.json();
  state.chat = { id: chat.id, uuid: chat.uuid };
  sessionStorage.setItem(CHAT, JSON.stringify({ ...state.chat, assistant: assistant.id }));
  applyAssistant(assistant);
  $("log").replaceChildren();
  if (assistant.initial_message) addBubble("assistant", assistant.initial_message, { intro: true });
  $("composer-input").focus();
}

// --- the conversation --------------------------------------------------------------------

function addBubble(role, text, options = {}) {
  const item = document.createElement("li");
  item.className = `msg ${role}`;
  const label = document.createElement("span");
  label.className = "visually-hidden";
  label.textContent = role === "user" ? "You said: " : role === "tool" ? "Tool: " : "Assistant: ";
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  item.append(label, body);
  if (options.intro) item.dataset.intro = "true";
  $("log").append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

function renderStored(message) {
  if (message.role === "tool") return renderTool(message.function_name, message.parameters, message);
  if (!message.visible && message.role !== "user") return null;
  // An assistant message that answers no user message is the greeting: no feedback on it.
  const greeting = message.role === "assistant" && message.usr_msg_num === null;
  const bubble = addBubble(message.role, message.content, { intro: greeting });
  if (message.role === "assistant" && !greeting) finishBubble(bubble, message);
  return bubble;
}

function renderTool(name, args, result) {
  const item = document.createElement("li");
  item.className = "msg tool";
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = `Tool ${name}`;
  const call = document.createElement("pre");
  call.textContent = `arguments: ${JSON.stringify(args)}`;
  const outcome = document.createElement("pre");
  outcome.className = "result";
  details.append(summary, call, outcome);
  item.append(details);
  $("log").append(item);
  item.dataset.name = name;
  if (result) {
    item.dataset.callId = result.tool_call_id;
    setToolResult(item, result.content, result.status === "failed");
  } else {
    summary.textContent = `Calling tool ${name}…`;
  }
  return item;
}

function setToolResult(item, content, isError) {
  item.querySelector("summary").textContent = `Tool ${item.dataset.name || ""} ${isError ? "failed" : "answered"}`;
  item.querySelector(".result").textContent = content;
}

function showReferences(bubble, references) {
  if (!references || references.length === 0) return;
  let list = bubble.querySelector(".refs");
  if (!list) {
    list = document.createElement("ol");
    list.className = "refs";
    list.setAttribute("aria-label", "Sources");
    bubble.append(list);
  }
  for (const ref of references) {
    const item = document.createElement("li");
    item.textContent = sourceName(ref.source);
    item.title = sourceName(ref.source);
    list.append(item);
  }
}

function finishBubble(bubble, message) {
  bubble.classList.remove("streaming");
  bubble.dataset.messageId = message.id;
  bubble.querySelector(".text").textContent = message.content;
  if (message.references && !bubble.querySelector(".refs")) showReferences(bubble, message.references);
  if (message.status === "cancelled") {
    const status = document.createElement("span");
    status.className = "status";
    status.textContent = "Stopped";
    bubble.append(status);
  }
  const actions = document.createElement("div");
  actions.className = "actions";
  for (const [label, value, text] of [["Like this answer", true, "Like"], ["Dislike this answer", false, "Dislike"]]) {
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("aria-label", label);
    button.setAttribute("aria-pressed", String(message.like === value));
    button.textContent = text;
    button.dataset.value = String(value);
    button.addEventListener("click", () => like(bubble, value).catch((e) => showError(e.message)));
    actions.append(button);
  }
  const reload = document.createElement("button");
  reload.type = "button";
  reload.className = "reload";
  reload.textContent = "Reload";
  reload.setAttribute("aria-label", "Write this answer again");
  reload.addEventListener("click", () => reloadAnswer().catch((e) => showError(e.message)));
  actions.append(reload);
  bubble.append(actions);
  markLastAnswer();
}

function markLastAnswer() {
  const answers = [...$("log").querySelectorAll(".msg.assistant[data-message-id]")];
  answers.forEach((bubble, index) => {
    const reload = bubble.querySelector(".reload");
    if (reload) reload.hidden = index !== answers.length - 1 || state.running;
  });
}

async function like(bubble, value) {
  const pressed = bubble.querySelector(`[aria-pressed="true"]`);
  const next = pressed && pressed.dataset.value === String(value) ? null : value;
  await api("PUT", `/messages/${bubble.dataset.messageId}/`, { like: next });
  for (const button of bubble.querySelectorAll(".actions button[aria-pressed]")) {
    button.setAttribute("aria-pressed", String(String(next) === button.dataset.value));
  }
}

function setRunning(running) {
  state.running = running;
  $("send").disabled = running;
  $("stop").hidden = !running;
  markLastAnswer();
}

function onEvent(event) {
  if (event.id) sessionStorage.setItem(eventKey(state.chat.id), event.id);
  let data = {};
  try { data = JSON.parse(event.data); } catch { return; }
  switch (event.type) {
    case "message.created":
      if (state.bubble) break; // a resumed answer already has its bubble
      state.bubble = addBubble("assistant", "");
      state.bubble.classList.add("streaming");
      state.bubble.setAttribute("aria-busy", "true");
      break;
    case "delta":
      if (!state.bubble) state.bubble = addBubble("assistant", "");
      state.bubble.querySelector(".text").append(data.text);
      state.bubble.scrollIntoView({ block: "end" });
      break;
    case "references":
      state.references = data.references || [];
      if (state.bubble) showReferences(state.bubble, data.references);
      break;
    case "tool.call": {
      if ($("log").querySelector(`[data-call-id="${CSS.escape(data.tool_call_id)}"]`)) break;
      const item = renderTool(data.tool_name || data.function_name, data.arguments);
      item.dataset.callId = data.tool_call_id;
      if (state.bubble) $("log").append(state.bubble); // keep the answer below its tools
      break;
    }
    case "tool.result": {
      const item = $("log").querySelector(`[data-call-id="${CSS.escape(data.tool_call_id)}"]`);
      if (item) setToolResult(item, data.content, data.is_error);
      break;
    }
    case "message.completed":
      if (!state.bubble) state.bubble = addBubble("assistant", "");
      state.bubble.removeAttribute("aria-busy");
      if (data.message.visible === false) state.bubble.remove();
      else finishBubble(state.bubble, data.message);
      state.bubble = null;
      state.references = [];
      break;
    case "error": {
      // Shown once, in the answer's place (not in the banner too).
      const bubble = state.bubble || addBubble("assistant", "");
      bubble.classList.remove("streaming");
      bubble.classList.add("error");
      bubble.removeAttribute("aria-busy");
      bubble.querySelector(".text").textContent = failedAnswer(data.status);
      state.bubble = null;
      state.references = [];
      break;
    }
    default:
      break;
  }
}

async function follow(request) {
  state.controller = new AbortController();
  setRunning(true);
  try {
    const response = await request(state.controller.signal);
    const type = response.headers.get("content-type") || "";
    if (type.startsWith("text/event-stream")) await readEvents(response, onEvent);
  } catch (err) {
    if (err.name !== "AbortError") showError(err.message);
    if (state.bubble) state.bubble.classList.remove("streaming");
  } finally {
    state.controller = null;
    setRunning(false);
  }
}

async function send(text) {
  clearError();
  addBubble("user", text);
  const key = crypto.randomUUID ? crypto.randomUUID() : String(Date.now());
  await follow((signal) =>
    api("POST", `/chats_stream/${state.chat.id}/`, { message: text }, {
      signal,
      headers: { Accept: "text/event-stream", "Idempotency-Key": key },
    }),
  );
}

async function reloadAnswer() {
  clearError();
  const answers = $("log").querySelectorAll(".msg.assistant[data-message-id]");
  const last = answers[answers.length - 1];
  if (last) last.remove();
  const users = $("log").querySelectorAll(".msg.user .text");
  const input = users.length ? users[users.length - 1].textContent : "";
  await follow((signal) =>
    api("POST", "/api/chat/stream/", { input, thread_uuid: state.chat.uuid, mode: "reload" }, {
      signal,
      headers: { Accept: "text/event-stream" },
    }),
  );
}

async function stop() {
  if (!state.chat) return;
  await api("POST", `/chats/${state.chat.id}/cancel/`);
  // The stream ends by itself with the partial answer (status "cancelled").
}

// --- coming back after a page reload -----------------------------------------------------
//
// On the way out (pagehide) the text of a running answer is kept with the id of the last event
// read. Coming back, the stored messages are shown, the partial answer is put back, and the
// stream resumes with Last-Event-ID: only the events missed arrive. Without a kept answer, the
// running answer is replayed from its start instead.

const partialKey = (chatId) => `chatsvc.partial.${chatId}`;

function keepPartial() {
  if (!state.running || !state.chat || !state.bubble) return;
  const text = state.bubble.querySelector(".text").textContent;
  sessionStorage.setItem(partialKey(state.chat.id), JSON.stringify({ text, references: state.references }));
}

function keptPartial(chatId) {
  const raw = sessionStorage.getItem(partialKey(chatId));
  sessionStorage.removeItem(partialKey(chatId));
  if (raw === null) return null;
  try {
    const kept = JSON.parse(raw);
    return { text: String(kept.text || ""), references: Array.isArray(kept.references) ? kept.references : [] };
  } catch {
    return null;
  }
}

async function resume(saved) {
  const info = await (await api("GET", "/assistants/info/?page_size=100")).json();
  const assistant = info.results.find((a) => a.id === saved.assistant);
  const chat = await (await api("GET", `/chats/${saved.id}/full/`)).json();
  state.chat = { id: chat.id, uuid: chat.uuid || saved.uuid };
  if (assistant) applyAssistant(assistant);
  else $("chat").hidden = false;
  $("log").replaceChildren();
  const partial = keptPartial(chat.id);
  const lastEventId = sessionStorage.getItem(eventKey(chat.id));
  const running = chat.execution_status === "PROCESSING";
  const resumable = running && partial !== null && lastEventId;
  const turn = lastUser(chat);
  for (const message of chat.messages) {
    // Replaying from the start shows this turn's tools again: do not show them twice.
    if (running && !resumable && message.role === "tool" && message.usr_msg_num === turn) continue;
    renderStored(message);
  }
  if (!running) return;
  if (resumable) {
    // The partial answer with its sources (their event came before the resume point).
    state.bubble = addBubble("assistant", partial.text);
    state.bubble.classList.add("streaming");
    state.references = partial.references;
    showReferences(state.bubble, partial.references);
  }
  const headers = { Accept: "text/event-stream" };
  if (resumable) headers["Last-Event-ID"] = lastEventId;
  await follow((signal) => api("GET", `/chats_stream/${chat.id}/`, undefined, { signal, headers }));
}

function lastUser(chat) {
  const users = chat.messages.filter((m) => m.role === "user");
  return users.length ? users[users.length - 1].msg_num : 0;
}

// --- wiring ------------------------------------------------------------------------------

function updateCounter() {
  const input = $("composer-input");
  const limit = state.assistant ? state.assistant.max_msg_length : null;
  const counter = $("counter");
  counter.textContent = limit ? `${input.value.length} / ${limit}` : "";
  counter.classList.toggle("over", Boolean(limit && input.value.length > limit));
}

function wire() {
  window.addEventListener("pagehide", keepPartial);
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearError();
    connect($("api-key").value.trim()).catch((e) => {
      sessionStorage.removeItem(KEY);
      showError(e.message);
      $("api-key").focus();
    });
  });
  $("forget-key").addEventListener("click", () => {
    sessionStorage.clear();
    location.reload();
  });
  $("new-chat").addEventListener("click", () => {
    sessionStorage.removeItem(CHAT);
    $("chat").hidden = true;
    $("assistants").hidden = false;
    const first = $("assistant-list").querySelector("button");
    if (first) first.focus();
  });
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("composer-input");
    const text = input.value.trim();
    if (!text || state.running) return;
    if (state.assistant && text.length > state.assistant.max_msg_length) {
      showError(`The message is longer than ${state.assistant.max_msg_length} characters.`);
      return;
    }
    input.value = "";
    updateCounter();
    send(text);
  });
  $("composer-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("composer").requestSubmit();
    } else if (event.key === "Escape" && state.running) {
      stop().catch((e) => showError(e.message));
    }
  });
  $("composer-input").addEventListener("input", updateCounter);
  $("stop").addEventListener("click", () => stop().catch((e) => showError(e.message)));
}

async function boot() {
  wire();
  if (!state.key) {
    $("api-key").focus();
    return;
  }
  try {
    await connect(state.key);
    const saved = JSON.parse(sessionStorage.getItem(CHAT) || "null");
    if (saved) await resume(saved);
  } catch (err) {
    showError(err.message);
    $("connect").hidden = false;
  }
}

boot();
