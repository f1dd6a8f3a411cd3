"""The admin console: server-rendered pages for the people who run the shop."""
