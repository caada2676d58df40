"""One chat that calls a script tool, a tool of a real MCP server (the SDK's server side, on
loopback, behind a header that references a workspace secret) and a retrieval tool over the
workspace's knowledge, all configured through the API, and streams the answer with their
events."""

from __future__ import annotations

import json

from tests.fakes.mcp_server import running_mcp_server
from tests.fixtures.app import live_tenant, make_settings
from tests.fixtures.chats import make_assistant, new_chat, of_role, settled
from tests.fixtures.sse import names, sse

REFUND = "Refunds are paid within 14 days to the card used for the purchase."


async def test_a_chat_calls_a_script_an_mcp_tool_and_a_retrieval_tool_and_streams_them(
    live_pg_url: str,
) -> None:
    token = "mcp-token-7f3a"
    async with running_mcp_server(required_headers={"authorization": f"Bearer {token}"}) as mcp:
        settings = make_settings(
            live_pg_url,
            outbound_allowed_schemes=["http", "https"],
            outbound_allowed_ports=[mcp.port],
            outbound_allow_list=["127.0.0.1/32"],
        )
        async with live_tenant(settings) as live:
            admin = live.admin
            # Knowledge the retrieval tool searches (the built-in backend, retrieval_id 1).
            kb = await make_assistant(admin, generation_config="offline")
            response = await admin.post(
                f"/assistants/{kb}/common_questions/",
                json={"name": "What is the refund policy?", "content": REFUND},
            )
            assert response.status_code == 201, response.text

            response = await admin.post(
                "/tools/scripts/",
                json={
                    "name": "adder",
                    "description": "Adds two numbers",
                    "code": "function main(args) { return {sum: args.a + args.b}; }",
                    "parameters": [
                        {"name": "a", "description": "a", "type": "number", "required": True},
                        {"name": "b", "description": "b", "type": "number", "required": True},
                    ],
                },
            )
            assert response.status_code == 201, response.text
            script = response.json()["id"]

            response = await admin.post("/secrets/", json={"name": "MCP-TOKEN", "value": token})
            assert response.status_code == 201, response.text
            response = await admin.post(
                "/mcp-servers/",
                json={
                    "name": "tools server",
                    "url": mcp.url,
                    "headers": {"Authorization": "Bearer {{secret:MCP-TOKEN}}"},
                },
            )
            assert response.status_code == 201, response.text
            server = response.json()["id"]
            response = await admin.post(
                f"/mcp-servers/{server}/tools/", json={"selected_tools": ["echo"]}
            )
            assert response.status_code == 201, response.text
            (echo,) = response.json()["tools"]

            response = await admin.post(
                "/tools/retrievals/",
                json={
                    "name": "policies",
                    "description": "Searches the policies",
                    "retrieval_id": 1,
                    "answer": False,
                    "parameters": [
                        {"name": "query", "description": "what to find", "type": "string"}
                    ],
                },
            )
            assert response.status_code == 201, response.text
            retrieval = response.json()["id"]

            assistant = await make_assistant(
                admin, generation_config="offline", tools=[script, echo["id"], retrieval]
            )
            chat = await new_chat(admin, assistant)
            message = (
                'use adder {"a": 20, "b": 22}, then echo {"text": "hello over MCP"} '
                'and policies {"query": "refund policy"}'
            )
            async with sse(
                admin, "POST", f"/chats_stream/{chat}/", json={"message": message}
            ) as source:
                assert source.response.status_code == 201
                found = await source.rest()

            order = names(found)
            assert order[0] == "message.created" and order[-1] == "message.completed"
            calls = {e.data["tool_name"]: e.data for e in found if e.event == "tool.call"}
            assert set(calls) == {"adder", "echo", "policies"}
            results = {e.data["tool_call_id"]: e.data for e in found if e.event == "tool.result"}
            assert not any(r["is_error"] for r in results.values()), results
            by_tool = {name: results[call["tool_call_id"]] for name, call in calls.items()}
            assert json.loads(by_tool["adder"]["content"]) == {"sum": 42}
            assert "hello over MCP" in by_tool["echo"]["content"]
            assert REFUND in by_tool["policies"]["content"]
            references = [e.data["references"] for e in found if e.event == "references"]
            assert references and "refund" in json.dumps(references).lower()

            answer = found[-1].data["message"]
            assert '{"sum": 42}' in answer["content"]
            assert "hello over MCP" in answer["content"] and REFUND in answer["content"]
            assert answer["references"] == references[-1]

            body = await settled(admin, chat)
            assert body["execution_status"] == "AVAILABLE"
            stored = of_role(body, "tool")
            assert sorted(m["metadata"]["tool_kind"] for m in stored) == [
                "mcp",
                "retrieval",
                "script",
            ]
            assert mcp.rpc_count("tools/call") == 1
            # The secret went to the MCP server and nowhere else the client can read.
            assert token not in json.dumps(body)
            server_body = (await admin.get(f"/mcp-servers/{server}/")).json()
            assert token not in json.dumps(server_body)
