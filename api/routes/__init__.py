"""One router per resource; each route authorises, validates and calls one service function."""
