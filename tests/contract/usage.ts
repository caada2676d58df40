// What a TypeScript client writes against the types openapi-typescript generates from chatsvc's
// OpenAPI document (./schema.ts, generated beside this file by tests/contract/test_sdk_contract.py):
// the scenario of scenario.py, request bodies with only the fields a caller must give (every other
// field has a default on the server), and the response fields it reads. `tsc --strict --noEmit`
// compiles this file with the generated one; nothing runs it.
import type { components, paths } from "./schema";

type JsonBody<T> = T extends { content: { "application/json": infer B } } ? B : never;
type RequestBody<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  requestBody?: infer R;
}
  ? JsonBody<NonNullable<R>>
  : never;
type ResponseBody<P extends keyof paths, M extends keyof paths[P], S extends number> =
  paths[P][M] extends { responses: infer R }
    ? S extends keyof R
      ? JsonBody<R[S]>
      : never
    : never;

// Create an assistant: only its description is required.
export const newAssistant: RequestBody<"/assistants/", "post"> = {
  description: "SDK contract check",
};
export function assistantId(created: ResponseBody<"/assistants/", "post", 201>): number {
  return created.id;
}

// Start a chat with a message: every field is optional.
export const newChat: RequestBody<"/assistants/{assistant}/", "post"> = {
  message: "What is chatsvc?",
};
export const emptyChat: RequestBody<"/assistants/{assistant}/", "post"> = {};

// Read it: the answer is the last message.
export function lastAnswer(chat: ResponseBody<"/chats/{id}/", "get", 200>): string | undefined {
  const last = chat.messages[chat.messages.length - 1];
  return last !== undefined && last.role === "assistant" ? last.content : undefined;
}

// Like the answer.
export const like: RequestBody<"/messages/{id}/", "put"> = { like: true };

// Report the chat: topic and comments may be left out.
export function reportOf(chat: number): RequestBody<"/reports/", "post"> {
  return {
    category: "INCOMPLETE",
    reason: "NOT_IN_DOCS",
    severity: "LOW",
    status: "OPEN",
    chat,
  };
}
export function reportedChat(report: ResponseBody<"/reports/{id}/", "get", 200>): number {
  return report.chat;
}

// Follow a stream (POST /chats_stream/{id}/): the `x-sse-events` of the streaming operations map
// each event type to its payload schema; a client parses `data` as one of these.
type Schemas = components["schemas"];
export function streamedAnswer(
  started: Schemas["MessageCreatedEvent"],
  deltas: Schemas["DeltaEvent"][],
): { chat: number; text: string } {
  return { chat: started.chat_id, text: deltas.map((delta) => delta.text).join("") };
}
