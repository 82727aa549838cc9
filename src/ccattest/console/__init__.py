"""The federation console: an HTTP API (and, later, a dashboard) over a federation's
status files and records. Read-only; bound to 127.0.0.1 unless asked otherwise."""
