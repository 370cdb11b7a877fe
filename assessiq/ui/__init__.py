"""The views: the interviewer's and the candidate's NiceGUI apps and the replay viewer."""

from .app import AppState, check_token, register_pages, serve

__all__ = ["AppState", "check_token", "register_pages", "serve"]
