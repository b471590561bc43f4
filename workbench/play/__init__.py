"""Agents playing the real games through the recorders' environment runners, stored like recordings."""

from .agents import AGENTS, Agent, RandomAgent, ReactiveAgent, ScriptedAgent, make_agent
from .session import find_game, play, play_path

__all__ = ["AGENTS", "Agent", "RandomAgent", "ReactiveAgent", "ScriptedAgent", "make_agent", "find_game", "play", "play_path"]
