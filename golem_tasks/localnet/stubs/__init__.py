"""Loopback stand-ins for the outside world: the payment chain's JSON-RPC and the image registry."""
