"""An MCP server of ours that implements what the official conformance suite's server
scenarios expect (tools, resources, prompts, completions, logging, progress, sampling,
elicitation, SSE polling), built on the SDK's lowlevel server.

Run over stdio (to sit behind Bastion): `python tests/servers/conformance_server.py`;
over Streamable HTTP (to be tested directly): `... --http 127.0.0.1:PORT` (endpoint /mcp).
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
from typing import Any

import anyio
import mcp_types as mt
import uvicorn
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.shared.exceptions import MCPError

# A 1x1 red PNG and a tiny silent WAV, for the image and audio scenarios.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
        "0000000c49444154789c63f8cfc0000003010100c9fe92ef0000000049454e44ae426082"
    )
).decode()
WAV = base64.b64encode(
    b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00@\x1f\x00\x00@\x1f\x00\x00\x01\x00\x08\x00data\x00\x00\x00\x00"
).decode()
SCHEMA_2020 = "https://json-schema.org/draft/2020-12/schema"

Ctx = ServerRequestContext[Any, Any]


def _tool(
    name: str, description: str, properties: dict[str, Any] | None = None, required: list[str] | None = None
) -> mt.Tool:
    schema: dict[str, Any] = {"type": "object", "properties": properties or {}}
    if required:
        schema["required"] = required
    return mt.Tool(name=name, description=description, input_schema=schema)


TOOLS = [
    _tool("test_simple_text", "Returns simple text"),
    _tool("test_image_content", "Returns an image"),
    _tool("test_audio_content", "Returns audio"),
    _tool("test_embedded_resource", "Returns an embedded resource"),
    _tool("test_multiple_content_types", "Returns text, an image and a resource"),
    _tool("test_tool_with_logging", "Sends log messages while it runs"),
    _tool("test_error_handling", "Always fails"),
    _tool("test_tool_with_progress", "Reports progress"),
    _tool("test_sampling", "Asks the client's model", {"prompt": {"type": "string"}}, ["prompt"]),
    _tool("test_elicitation", "Asks the user", {"message": {"type": "string"}}, ["message"]),
    _tool("test_elicitation_sep1034_defaults", "Asks the user with defaults for every primitive type"),
    _tool("test_elicitation_sep1330_enums", "Asks the user with every enum form"),
    _tool("test_reconnection", "Closes its SSE stream mid-call so the client reconnects"),
    mt.Tool(
        name="json_schema_2020_12_tool",
        description="Tool with JSON Schema 2020-12 features",
        input_schema={
            "$schema": SCHEMA_2020,
            "type": "object",
            "$defs": {
                "address": {"type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}
            },
            "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
            "additionalProperties": False,
        },
    ),
]


def _text(text: str) -> mt.CallToolResult:
    return mt.CallToolResult(content=[mt.TextContent(type="text", text=text)])


async def list_tools(ctx: Ctx, params: mt.PaginatedRequestParams | None) -> mt.ListToolsResult:
    return mt.ListToolsResult(tools=TOOLS)


async def call_tool(ctx: Ctx, params: mt.CallToolRequestParams) -> mt.CallToolResult:
    arguments = params.arguments or {}
    name = params.name
    if name == "test_simple_text":
        return _text("This is a simple text response for testing.")
    if name == "test_image_content":
        return mt.CallToolResult(content=[mt.ImageContent(type="image", data=PNG, mime_type="image/png")])
    if name == "test_audio_content":
        return mt.CallToolResult(content=[mt.AudioContent(type="audio", data=WAV, mime_type="audio/wav")])
    if name == "test_embedded_resource":
        resource = mt.TextResourceContents(
            uri="test://embedded-resource", mime_type="text/plain", text="This is an embedded resource content."
        )
        return mt.CallToolResult(content=[mt.EmbeddedResource(type="resource", resource=resource)])
    if name == "test_multiple_content_types":
        resource = mt.TextResourceContents(
            uri="test://mixed-content-resource", mime_type="application/json", text='{"test":"data","value":123}'
        )
        return mt.CallToolResult(
            content=[
                mt.TextContent(type="text", text="Multiple content types test:"),
                mt.ImageContent(type="image", data=PNG, mime_type="image/png"),
                mt.EmbeddedResource(type="resource", resource=resource),
            ]
        )
    if name == "test_tool_with_logging":
        for message in ("Tool execution started", "Tool processing data", "Tool execution completed"):
            await ctx.session.send_log_message("info", message, related_request_id=ctx.request_id)
            await anyio.sleep(0.05)  # paced like the reference server: each message arrives while the call runs
        return _text("Tool with logging executed successfully")
    if name == "test_error_handling":
        return mt.CallToolResult(
            content=[mt.TextContent(type="text", text="This tool intentionally returns an error for testing")],
            is_error=True,
        )
    if name == "test_tool_with_progress":
        token = (ctx.meta or {}).get("progress_token")
        for step in (0, 50, 100):
            if token is not None:
                await ctx.session.send_progress_notification(token, step, 100, related_request_id=str(ctx.request_id))
            await anyio.sleep(0.05)  # paced, as above
        return _text("Tool with progress executed successfully")
    if name == "test_sampling":
        result = await ctx.session.create_message(
            messages=[
                mt.SamplingMessage(
                    role="user", content=mt.TextContent(type="text", text=str(arguments.get("prompt", "")))
                )
            ],
            max_tokens=100,
            related_request_id=ctx.request_id,
        )
        content = result.content
        text = content.text if isinstance(content, mt.TextContent) else json.dumps(result.model_dump(mode="json"))
        return _text(f"LLM response: {text}")
    if name in ("test_elicitation", "test_elicitation_sep1034_defaults", "test_elicitation_sep1330_enums"):
        message, schema = ELICITATIONS[name](arguments)
        outcome = await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
        if name == "test_elicitation":
            return _text(f"User response: action={outcome.action}, content={json.dumps(outcome.content)}")
        return _text(f"Elicitation completed: action={outcome.action}, content={json.dumps(outcome.content)}")
    if name == "test_reconnection":
        # The behaviour under test: the stream closes mid-call, and the answer comes after the client reconnects.
        await anyio.sleep(0.05)
        if ctx.close_sse_stream is not None:
            await ctx.close_sse_stream()
        await anyio.sleep(0.3)
        return _text("Reconnection test completed successfully")
    if name == "json_schema_2020_12_tool":
        return _text(f"Received: {json.dumps(arguments)}")
    raise MCPError(mt.INVALID_PARAMS, f"Unknown tool: {name}")


ELICITATIONS: dict[str, Any] = {
    "test_elicitation": lambda args: (
        str(args.get("message", "")),
        {
            "type": "object",
            "properties": {
                "username": {"type": "string", "description": "User's response"},
                "email": {"type": "string", "description": "User's email address"},
            },
            "required": ["username", "email"],
        },
    ),
    "test_elicitation_sep1034_defaults": lambda _args: (
        "Please review and update the form fields with defaults",
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "User name", "default": "John Doe"},
                "age": {"type": "integer", "description": "User age", "default": 30},
                "score": {"type": "number", "description": "User score", "default": 95.5},
                "status": {
                    "type": "string",
                    "description": "User status",
                    "enum": ["active", "inactive", "pending"],
                    "default": "active",
                },
                "verified": {"type": "boolean", "description": "Verification status", "default": True},
            },
            "required": [],
        },
    ),
    "test_elicitation_sep1330_enums": lambda _args: (
        "Please select options from the enum fields",
        {
            "type": "object",
            "properties": {
                "untitledSingle": {
                    "type": "string",
                    "description": "Choose an option",
                    "enum": ["option1", "option2", "option3"],
                },
                "titledSingle": {
                    "type": "string",
                    "description": "Choose a titled option",
                    "oneOf": [
                        {"const": "value1", "title": "First Option"},
                        {"const": "value2", "title": "Second Option"},
                        {"const": "value3", "title": "Third Option"},
                    ],
                },
                "legacyEnum": {
                    "type": "string",
                    "description": "Choose a legacy option",
                    "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"],
                },
                "untitledMulti": {
                    "type": "array",
                    "description": "Choose multiple options",
                    "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
                },
                "titledMulti": {
                    "type": "array",
                    "description": "Choose multiple titled options",
                    "items": {
                        "anyOf": [
                            {"const": "value1", "title": "First Choice"},
                            {"const": "value2", "title": "Second Choice"},
                            {"const": "value3", "title": "Third Choice"},
                        ]
                    },
                },
            },
            "required": [],
        },
    ),
}

RESOURCES = [
    mt.Resource(
        uri="test://static-text", name="static-text", description="A static text resource", mime_type="text/plain"
    ),
    mt.Resource(
        uri="test://static-binary", name="static-binary", description="A static binary resource", mime_type="image/png"
    ),
    mt.Resource(
        uri="test://watched-resource",
        name="watched-resource",
        description="A resource to subscribe to",
        mime_type="text/plain",
    ),
]


async def list_resources(ctx: Ctx, params: mt.PaginatedRequestParams | None) -> mt.ListResourcesResult:
    return mt.ListResourcesResult(resources=RESOURCES)


async def list_templates(ctx: Ctx, params: mt.PaginatedRequestParams | None) -> mt.ListResourceTemplatesResult:
    template = mt.ResourceTemplate(
        uri_template="test://template/{id}/data",
        name="template",
        description="Data by id",
        mime_type="application/json",
    )
    return mt.ListResourceTemplatesResult(resource_templates=[template])


async def read_resource(ctx: Ctx, params: mt.ReadResourceRequestParams) -> mt.ReadResourceResult:
    uri = str(params.uri)
    if uri == "test://static-text":
        contents: Any = mt.TextResourceContents(
            uri=uri, mime_type="text/plain", text="This is the content of the static text resource."
        )
    elif uri == "test://static-binary":
        contents = mt.BlobResourceContents(uri=uri, mime_type="image/png", blob=PNG)
    elif uri == "test://watched-resource":
        contents = mt.TextResourceContents(uri=uri, mime_type="text/plain", text="Watched resource content.")
    elif uri.startswith("test://template/") and uri.endswith("/data"):
        ident = uri.removeprefix("test://template/").removesuffix("/data")
        text = json.dumps({"id": ident, "templateTest": True, "data": f"Data for ID: {ident}"}, separators=(",", ":"))
        contents = mt.TextResourceContents(uri=uri, mime_type="application/json", text=text)
    else:
        raise MCPError(mt.INVALID_PARAMS, f"Resource not found: {uri}")
    return mt.ReadResourceResult(contents=[contents])


SUBSCRIPTIONS: set[str] = set()


async def subscribe(ctx: Ctx, params: mt.SubscribeRequestParams) -> mt.EmptyResult:
    SUBSCRIPTIONS.add(str(params.uri))
    return mt.EmptyResult()


async def unsubscribe(ctx: Ctx, params: mt.UnsubscribeRequestParams) -> mt.EmptyResult:
    SUBSCRIPTIONS.discard(str(params.uri))
    return mt.EmptyResult()


PROMPTS = [
    mt.Prompt(name="test_simple_prompt", description="A simple prompt"),
    mt.Prompt(
        name="test_prompt_with_arguments",
        description="A prompt with arguments",
        arguments=[
            mt.PromptArgument(name="arg1", description="First test argument", required=True),
            mt.PromptArgument(name="arg2", description="Second test argument", required=True),
        ],
    ),
    mt.Prompt(
        name="test_prompt_with_embedded_resource",
        description="A prompt with an embedded resource",
        arguments=[mt.PromptArgument(name="resourceUri", description="URI of the resource to embed", required=True)],
    ),
    mt.Prompt(name="test_prompt_with_image", description="A prompt with an image"),
]


async def list_prompts(ctx: Ctx, params: mt.PaginatedRequestParams | None) -> mt.ListPromptsResult:
    return mt.ListPromptsResult(prompts=PROMPTS)


def _user(content: Any) -> mt.PromptMessage:
    return mt.PromptMessage(role="user", content=content)


async def get_prompt(ctx: Ctx, params: mt.GetPromptRequestParams) -> mt.GetPromptResult:
    args = params.arguments or {}
    if params.name == "test_simple_prompt":
        messages = [_user(mt.TextContent(type="text", text="This is a simple prompt for testing."))]
    elif params.name == "test_prompt_with_arguments":
        text = f"Prompt with arguments: arg1='{args.get('arg1', '')}', arg2='{args.get('arg2', '')}'"
        messages = [_user(mt.TextContent(type="text", text=text))]
    elif params.name == "test_prompt_with_embedded_resource":
        resource = mt.TextResourceContents(
            uri=args.get("resourceUri", "test://example-resource"),
            mime_type="text/plain",
            text="Embedded resource content for testing.",
        )
        messages = [
            _user(mt.EmbeddedResource(type="resource", resource=resource)),
            _user(mt.TextContent(type="text", text="Please process the embedded resource above.")),
        ]
    elif params.name == "test_prompt_with_image":
        messages = [
            _user(mt.ImageContent(type="image", data=PNG, mime_type="image/png")),
            _user(mt.TextContent(type="text", text="Please analyze the image above.")),
        ]
    else:
        raise MCPError(mt.INVALID_PARAMS, f"Unknown prompt: {params.name}")
    return mt.GetPromptResult(messages=messages)


async def complete(ctx: Ctx, params: mt.CompleteRequestParams) -> mt.CompleteResult:
    candidates = ["paris", "park", "party", "test", "testing"]
    values = [value for value in candidates if value.startswith(params.argument.value)]
    return mt.CompleteResult(completion=mt.Completion(values=values, total=len(values), has_more=False))


async def set_level(ctx: Ctx, params: mt.SetLevelRequestParams) -> mt.EmptyResult:
    return mt.EmptyResult()


class ConformanceServer(Server[Any]):
    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        options = NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)
        return super().create_initialization_options(options, experimental_capabilities, extensions)


def build() -> ConformanceServer:
    return ConformanceServer(  # pyright: ignore[reportCallIssue,reportDeprecated]
        "bastion-conformance-server",
        version="1.0.0",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_subscribe_resource=subscribe,
        on_unsubscribe_resource=unsubscribe,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
        on_completion=complete,
        on_set_logging_level=set_level,
    )


class MemoryEventStore(EventStore):
    """Keeps every SSE event, so a client that reconnects with Last-Event-ID misses nothing."""

    def __init__(self) -> None:
        self._events: list[tuple[str, str, mt.JSONRPCMessage | None]] = []
        self._ids = itertools.count(1)

    async def store_event(self, stream_id: str, message: mt.JSONRPCMessage | None) -> str:
        event_id = str(next(self._ids))
        self._events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(self, last_event_id: str, send_callback: EventCallback) -> str | None:
        position = next((i for i, (event_id, _s, _m) in enumerate(self._events) if event_id == last_event_id), None)
        if position is None:
            return None
        stream = self._events[position][1]
        for event_id, stream_id, message in self._events[position + 1 :]:
            if stream_id == stream and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream


async def serve_stdio() -> None:
    server = build()
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--http", metavar="HOST:PORT", help="serve Streamable HTTP at /mcp instead of stdio")
    options = parser.parse_args()
    if options.http is None:
        anyio.run(serve_stdio)
        return
    host, _, port = options.http.rpartition(":")
    app = build().streamable_http_app(event_store=MemoryEventStore(), retry_interval=200, host=host)
    uvicorn.run(app, host=host, port=int(port), log_level="warning")


if __name__ == "__main__":
    main()
