"""HTTP/1 rules, pure: headers, messages, validation, framing, persistence, routing."""
