"""The consumer portal (SPEC §10): its session RPC, its login and its static pages."""
