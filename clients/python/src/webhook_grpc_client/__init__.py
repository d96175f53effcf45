"""Python client of webhook-grpc.

* `WebhooksClient`: publish events (idempotent, retried on ``UNAVAILABLE``), manage
  subscriptions (``client.subscriptions``), and stream the feed (`Feed`, resumes by cursor).
* `verify`: check the signature of a delivery in the receiving endpoint (timestamped by default).
* `v1`: the generated messages and stubs of ``webhooks.v1``.
"""

from webhook_grpc_client import v1
from webhook_grpc_client._gen.webhooks.v1.events_pb2 import Event
from webhook_grpc_client._gen.webhooks.v1.subscriptions_pb2 import Subscription
from webhook_grpc_client.client import NewEvent, WebhooksClient
from webhook_grpc_client.feed import Feed
from webhook_grpc_client.retry import RetryPolicy
from webhook_grpc_client.subscriptions import Subscriptions
from webhook_grpc_client.verify import VerificationFailure, WebhookVerificationError, verify

__version__ = "0.1.0"

__all__ = [
    "Event",
    "Feed",
    "NewEvent",
    "RetryPolicy",
    "Subscription",
    "Subscriptions",
    "VerificationFailure",
    "WebhookVerificationError",
    "WebhooksClient",
    "__version__",
    "v1",
    "verify",
]
