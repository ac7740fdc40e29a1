"""Every drift check, one module each; importing this package registers them all."""
