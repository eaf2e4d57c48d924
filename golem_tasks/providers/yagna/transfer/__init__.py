"""Moving files to and from providers: the Storage seam and GFTP over the daemon's GSB WebSocket API."""
