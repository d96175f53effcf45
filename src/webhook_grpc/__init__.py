"""webhook-grpc: domain events delivered as signed webhooks and served as a gRPC feed."""

__version__ = "0.1.0"
