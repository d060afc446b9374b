"""The method handlers of the KServe V2 gRPC service, built from its descriptor.

The generated ``add_GRPCInferenceServiceServicer_to_server`` would register every
method with protobuf's own parser and the servicer's methods as they are. Two things
then leak to any client: a request message that does not parse is answered
``UNKNOWN`` with the parser's class names (``Unexpected <class
'google.protobuf.message.DecodeError'>: ...``), and a method this server does not
implement (model statistics, repository control, streaming) answers ``Unexpected
<class 'NotImplementedError'>: Method not implemented!`` and logs a traceback per call.

Here each request is parsed by a function that never raises: a message that does not
parse is answered ``INVALID_ARGUMENT`` through the servicer's one error mapping (so it
is counted like any refused request), and every method the servicer does not
implement answers ``UNIMPLEMENTED`` in plain words, without a log line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message
from tritonclient.grpc import service_pb2, service_pb2_grpc

from service.errors import MalformedRequest

SERVICE = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]


class _Malformed:
    """Stands for a request message that did not parse."""


MALFORMED = _Malformed()


def register(servicer: Any, server: grpc.aio.Server) -> None:
    """Add the service's handlers for ``servicer`` (an ``InferenceService``) to ``server``."""
    handlers = {method.name: _handler(servicer, method) for method in SERVICE.methods}
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),)
    )
    server.add_registered_method_handlers(SERVICE.full_name, handlers)


def _handler(servicer: Any, method: Any) -> grpc.RpcMethodHandler:
    request_class = getattr(service_pb2, method.input_type.name)
    response_class = getattr(service_pb2, method.output_type.name)
    parse = _parser(request_class)
    serialize = response_class.SerializeToString
    if method.client_streaming or method.server_streaming:
        return grpc.stream_stream_rpc_method_handler(
            _unimplemented_stream(method.name),
            request_deserializer=parse,
            response_serializer=serialize,
        )
    own = getattr(type(servicer), method.name, None)
    generated = getattr(service_pb2_grpc.GRPCInferenceServiceServicer, method.name, None)
    behaviour = _unimplemented(method.name) if own is generated else _checked(servicer, method)
    return grpc.unary_unary_rpc_method_handler(
        behaviour, request_deserializer=parse, response_serializer=serialize
    )


def _parser(request_class: type[Message]) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return request_class.FromString(data)
        except DecodeError:
            return MALFORMED

    return parse


def _checked(servicer: Any, method: Any) -> Callable[[Any, Any], Any]:
    implemented = getattr(servicer, method.name)

    async def behaviour(request: Any, context: Any) -> Any:
        if request is MALFORMED:

            async def refuse() -> Any:
                raise MalformedRequest(f"the {method.name} request message does not parse")

            return await servicer.answer(method.name, context, refuse)
        return await implemented(request, context)

    return behaviour


def _unimplemented(name: str) -> Callable[[Any, Any], Any]:
    async def behaviour(request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{name} is not implemented here")

    return behaviour


def _unimplemented_stream(name: str) -> Callable[[AsyncIterator[Any], Any], Any]:
    async def behaviour(requests: AsyncIterator[Any], context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{name} is not implemented here")
        yield  # an async generator, as a streaming handler is

    return behaviour
