"""TLS listeners that admit (count and limit) a connection before its handshake: `server.serve_tls`."""
