"""The real yagna daemon, run offline: its process, settings, ports and parent-death guard."""
