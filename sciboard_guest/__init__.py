"""The SciBoard guest agent: the small HTTP service that runs ON a desktop.

It owns the desktop session (X server, window manager, D-Bus and AT-SPI buses,
the app), serves raw screenshots, injects input, reads the accessibility tree,
and runs the app's NAMED setup steps and state probes. It requires a token on
every request, binds loopback (or the VM-only network) and has no endpoint that
runs arbitrary code or shell strings.

It depends only on the standard library and Debian packages (python3-numpy,
python3-pyatspi, xdotool), so it runs unchanged inside a VM image built from
Debian packages. What host and guest must agree on is in :mod:`sciboard_guest.protocol`.
"""
