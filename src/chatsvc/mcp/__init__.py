"""MCP servers and the tools made from their remote tools: configuration rules (URLs checked
by the outbound policy, headers with secret references, masking), the remote tool list, and
calling a configured MCP tool. The protocol client lives in chatsvc.tools.mcp_client."""
