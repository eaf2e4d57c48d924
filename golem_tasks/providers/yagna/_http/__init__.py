"""The HTTP layer under every yagna API: transport and error mapping, retry policies, JSON values, event streams."""
