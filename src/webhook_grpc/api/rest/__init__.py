"""The REST/JSON face of the API (SPEC §9): routes read from the protos' `google.api.http`
annotations, each request transcoded to the same servicer method the gRPC server calls."""
