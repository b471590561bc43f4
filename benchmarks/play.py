"""Agent steps/s per engine with the random agent, and the runner's overhead over the bare emulator.

Per engine (one catalog game each), the same random inputs are sent three ways: straight to the
emulator (``bare``: the engine call alone, no frame preprocessing or state reads), through the
:class:`~workbench.data.runners.EnvRunner` (``runner``: 96x96 frames, outcomes and engine state
read every step), and by the random agent in a full :func:`~workbench.data.runners.rollout`
(``agent``: also the agent's choice and the episode's label arrays). Overhead = runner / bare
time - 1 (issue 12's target: at most 10 %), in wall time and in CPU time (this process and its
children: ViZDoom's engine runs in a child process), best of interleaved repeats, since the shared
machine's load inflates wall time. Figures are measured, never asserted.
"""

from __future__ import annotations

import time

import numpy as np
import psutil

from workbench.data.recorders import episode_rng, get_engine
from workbench.data.runners import rollout
from workbench.play import RandomAgent, find_game

GAMES = ("Enduro", "CarRacing", "freedoom1_smooth")


def run(workers: int | None = None, steps: int = 300, repeats: int = 5) -> dict:
    return {"steps": steps, "repeats": repeats, "games": {g: _measure(g, steps, repeats) for g in GAMES}}


def _measure(game: str, steps: int, repeats: int) -> dict:
    entry, cfg = find_game(game)
    with get_engine(cfg["engine"]).Runner(entry.runner_config(cfg), entry.frame_size) as runner:
        agent = RandomAgent()
        seed = agent.begin(runner, episode_rng(0, game, 0), steps)
        runner.reset(seed)
        inputs = [agent.act(runner.observation(), []) for _ in range(steps)]
        bare_step = _bare(runner, cfg["engine"], inputs)
        times = {"bare": [], "runner": [], "agent": []}
        for _ in range(repeats):  # interleaved, best of ``repeats``: the shared CPU's noise hits all three
            times["bare"].append(_timed(lambda: _loop(runner, seed, bare_step, len(inputs))))
            times["runner"].append(_timed(lambda: _loop(runner, seed, lambda i: runner.step(inputs[i])[2:4], len(inputs))))
            agent_seed = agent.begin(runner, episode_rng(0, game, 0), steps)
            n = len(rollout(runner, agent.act, agent_seed, steps).frames)
            times["agent"].append(_timed(lambda: rollout(runner, agent.act, agent_seed, steps)) * steps / n)
    best = {k: np.min(v, axis=0) for k, v in times.items()}  # (wall, CPU) seconds, each its best
    return {"engine": cfg["engine"], **{f"{k}_steps_per_s": steps / t[0] for k, t in best.items()},
            "runner_overhead": best["runner"][0] / best["bare"][0] - 1,
            **{f"{k}_cpu_ms_per_step": 1e3 * t[1] / steps for k, t in best.items()},
            "runner_overhead_cpu": best["runner"][1] / best["bare"][1] - 1}


def _bare(runner, engine: str, inputs: list[dict]):
    """``step(i) -> (terminated, truncated)`` sending input ``i`` with the engine's own call."""
    if engine == "ale":
        actions = [runner.index[runner.action_name(x)] for x in inputs]
        return lambda i: runner.env.step(actions[i])[2:4]
    if engine == "carracing":
        actions = [np.array([x["steer_value"], runner.gas * x["accel"], runner.brake_force * x["brake"]], np.float32)
                   for x in inputs]

        def car(i):
            for _ in range(runner.repeat):
                *_, terminated, truncated, _ = runner.env.step(actions[i])
                if terminated or truncated:
                    return terminated, truncated
            return False, False
        return car
    buttons = [[float(x["key_w"]), float(x["key_a"]), float(x["key_d"]), x["mouse_dx"] / runner.tics] for x in inputs]

    def doom(i):
        runner.game.make_action(buttons[i], runner.tics)
        runner.game.get_state()  # the screen is the emulator's output, as env.step returns it
        return runner.game.is_episode_finished(), False
    return doom


def _loop(runner, seed: int, step, n: int) -> None:
    runner.reset(seed)
    for i in range(n):
        if any(step(i)):
            runner.reset(seed)


def _cpu_seconds() -> float:
    """CPU time of this process and its live children (ViZDoom's engine process)."""
    me = psutil.Process()
    return time.process_time() + sum(sum(c.cpu_times()[:2]) for c in me.children(recursive=True))


def _timed(fn) -> np.ndarray:
    """``(wall seconds, CPU seconds)`` of running ``fn``."""
    start, cpu = time.perf_counter(), _cpu_seconds()
    fn()
    return np.array([time.perf_counter() - start, _cpu_seconds() - cpu])


def to_markdown(r: dict) -> str:
    lines = [f"# Play throughput (random agent, {r['steps']} steps, best of {r['repeats']})", "",
             "Bare: the emulator call alone; runner: EnvRunner.step (96x96 frames, outcomes, state); agent: "
             "the random agent in a full rollout. Resets are inside the timings. CPU: this process and its "
             "children (ViZDoom's engine).", "",
             "| game | engine | bare steps/s | runner steps/s | agent steps/s | bare CPU ms/step | runner CPU ms/step "
             "| runner overhead (wall) | runner overhead (CPU) |", "|---|---|---|---|---|---|---|---|---|"]
    for game, v in r["games"].items():
        lines.append(f"| {game} | {v['engine']} | {v['bare_steps_per_s']:.0f} | {v['runner_steps_per_s']:.0f} "
                     f"| {v['agent_steps_per_s']:.0f} | {v['bare_cpu_ms_per_step']:.3f} | {v['runner_cpu_ms_per_step']:.3f} "
                     f"| {100 * v['runner_overhead']:+.1f} % | {100 * v['runner_overhead_cpu']:+.1f} % |")
    return "\n".join(lines) + "\n"
