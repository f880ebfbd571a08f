"""A generic gRPC client that knows nothing of Berth's protos: it learns the API from the
server's reflection service, checks health, and calls Version with dynamically built
messages. Usage: generic_grpc_client.py unix:/path/to/socket"""
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

target = sys.argv[1]
# grpcio sends the socket path as :authority for unix targets, which HTTP/2 servers
# (hyper's among them) reject; grpcurl sends "localhost", and so do we.
channel = grpc.insecure_channel(target, options=[("grpc.default_authority", "localhost")])
grpc.channel_ready_future(channel).result(timeout=10)

health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
print("health", health_pb2.HealthCheckResponse.ServingStatus.Name(health.status))

stub = reflection_pb2_grpc.ServerReflectionStub(channel)


def ask(request):
    return next(iter(stub.ServerReflectionInfo(iter([request]), timeout=10)))


services = sorted(s.name for s in ask(reflection_pb2.ServerReflectionRequest(list_services="")).list_services_response.service)
print("services", " ".join(services))

pool = descriptor_pool.DescriptorPool()
known = {}


def fetch(request):
    for raw in ask(request).file_descriptor_response.file_descriptor_proto:
        proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
        known.setdefault(proto.name, proto)


def add(name):
    """Add a file to the pool after its dependencies, asking the server for any missing."""
    try:
        pool.FindFileByName(name)
        return
    except KeyError:
        pass
    if name not in known:
        fetch(reflection_pb2.ServerReflectionRequest(file_by_filename=name))
    for dependency in known[name].dependency:
        add(dependency)
    pool.Add(known[name])


def add_file_for(symbol):
    fetch(reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol))
    for name in list(known):
        add(name)


add_file_for("berth.supervisor.v1.Version")
method = pool.FindServiceByName("berth.supervisor.v1.Version").FindMethodByName("Version")
request_class = message_factory.GetMessageClass(method.input_type)
response_class = message_factory.GetMessageClass(method.output_type)
call = channel.unary_unary(
    "/berth.supervisor.v1.Version/Version",
    request_serializer=request_class.SerializeToString,
    response_deserializer=response_class.FromString,
)
reply = call(request_class(), timeout=10)
print("version", reply.version, reply.api)
