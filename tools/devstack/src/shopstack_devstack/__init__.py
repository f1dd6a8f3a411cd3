"""The local platform: embedded PostgreSQL, Redis and NGINX, the services under their
production servers, and a supervisor that starts them in order and stops them all."""
