"""Agent-motion samples of a nuScenes key frame: where the agents around the ego will be.

OpenDriveVLA's agent-environment-ego interaction stage trains the model on the motion of the
surrounding agents; this is that data from nuScenes' own annotations. An agent's future is
its annotation chain (`sample_annotation.next`, one link per key frame) followed for the
planning horizon the ego uses (6 points, every 0.5 s), each box centre in the ego frame of
the current key frame (x forward, y left), as the devkit puts a global box into the ego
frame (`NuScenes.get_sample_data`: minus the ego translation, then the inverse ego rotation).
A chain that ends early is padded as the ego's future is (VAD's rule): the point repeats the
last valid one and is marked invalid. The question gives the ego's state and valid 2 s history
too, so the forecast is conditioned on the ego, as in the paper's interaction stage (the
OpenDriveVLA fork hennyg888/OpenDriveVLA builds its stage-2.5 samples the same way:
`drivevla/data_converter/fusionad_converter/stage25_converter.py`, 6 future points from the
`next` chain in the current ego frame, ego history in the prompt).

Our choices (no paper fixes them): agents are vehicles and pedestrians (`vehicle.*`,
`human.pedestrian.*`) within 50 m of the ego, at most the 8 nearest, nearest first, all in one
sample per key frame (the fork writes one sample per tracked agent; one per key frame keeps the
stage's size that of the planning data); a key frame without such an agent has no motion
sample. The sample is a separate task,
`motion.agents`, with its own key (`nuscenes-motion-<sample_token>`); the planning sample
of the key frame is unchanged.
"""
from __future__ import annotations

import math

import numpy as np

from dataengine.trajectory import DT, FUTURE, clean
from dataengine.waypoints import format_waypoints

TASK = "motion.agents"
AGENT_PREFIXES = ("vehicle.", "human.pedestrian.")
RADIUS_M = 50.0
MAX_AGENTS = 8


def agent_name(category: str) -> str:
    """Plain words for a category: `human.pedestrian.adult` -> "adult pedestrian",
    `vehicle.emergency.police` -> "police"."""
    parts = category.split(".")
    name = f"{parts[-1]} pedestrian" if parts[0] == "human" else parts[-1]
    return name.replace("_", " ")


def _in_ego(world_to_ego: np.ndarray, translation) -> list[float]:
    x, y, _ = world_to_ego[:3, :3] @ np.asarray(translation, dtype=float) + world_to_ego[:3, 3]
    return [clean(float(x)), clean(float(y))]


def agent_futures(frames: list[dict], world_to_ego: np.ndarray, k: int) -> list[dict]:
    """The agents of key frame k (nearest first) with their current position and future in
    k's ego frame; `world_to_ego` is k's (4x4)."""
    index = {a["token"]: (j, a) for j, f in enumerate(frames) for a in f["annotations"]}
    agents = []
    for ann in frames[k]["annotations"]:
        if not ann["category"].startswith(AGENT_PREFIXES):
            continue
        now = _in_ego(world_to_ego, ann["translation"])
        distance = math.hypot(*now)
        if distance > RADIUS_M:
            continue
        xy, valid, last, token = [], [], now, ann.get("next", "")
        for step in range(1, FUTURE + 1):
            link = index.get(token)
            ok = link is not None and link[0] == k + step
            if ok:
                last = _in_ego(world_to_ego, link[1]["translation"])
                token = link[1].get("next", "")
            else:
                token = ""
            xy.append(list(last))
            valid.append(ok)
        agents.append({"distance": distance, "token": ann["token"], "category": ann["category"],
                       "instance_id": f"nuscenes:{ann['instance_token']}", "annotation_id": ann["token"],
                       "xy_now": now, "future": {"frame": "ego_xfwd_yleft", "dt_s": DT, "xy": xy, "valid": valid}})
    agents.sort(key=lambda a: (a["distance"], a["token"]))
    return [{k2: v for k2, v in a.items() if k2 not in ("distance", "token")} for a in agents[:MAX_AGENTS]]


def motion_question(location: str, ego: dict, agents: list[dict]) -> str:
    """The agents to forecast, after the ego's state and valid history (the forecast's condition)."""
    history = [p for p, v in zip(ego["history_xy"], ego["history_valid"]) if v]
    past = (f"its past trajectory over the last 2 s (oldest first) {format_waypoints(history)}" if history
            else "no past trajectory")
    listed = "; ".join(f"{i}. {agent_name(a['category'])} at ({a['xy_now'][0]:.2f}, {a['xy_now'][1]:.2f})"
                       for i, a in enumerate(agents, 1))
    return (f"You are driving in {location} (x forward, y left, metres, in the ego frame now). Ego state: speed "
            f"{ego['speed_mps']:.2f} m/s, acceleration {ego['accel_mps2']:.2f} m/s^2, yaw rate "
            f"{ego['yaw_rate_rps']:.3f} rad/s, {past}. Agents around the ego vehicle: {listed}. Predict each "
            f"agent's position over the next 3 s as 6 waypoints (x, y) every 0.5 s in the same frame, one line "
            f"per agent: its number, then its waypoints.")


def motion_answer(agents: list[dict]) -> str:
    return "\n".join(f"{i}. {format_waypoints(a['future']['xy'])}" for i, a in enumerate(agents, 1))


def motion_sample(planning: dict, agents: list[dict]) -> dict:
    """The key frame's motion sample, built beside its planning sample (same media, ego, scene)."""
    location = planning["meta"]["location"] or "an unknown city"
    token = planning["meta"]["sample_token"]
    return {
        "schema": planning["schema"], "id": f"nuscenes-motion-{token}", "dataset": planning["dataset"],
        "split": planning["split"], "task": TASK, "scene_id": planning["scene_id"], "frame_id": planning["frame_id"],
        "layout": planning["layout"], "media": [dict(m) for m in planning["media"]],
        "conversations": [{"role": "user", "content": motion_question(location, planning["ego"], agents)},
                          {"role": "assistant", "content": motion_answer(agents)}],
        "ego": planning["ego"],
        "objects": [{"category": a["category"], "instance_id": a["instance_id"],
                     "annotation_id": a["annotation_id"], "xy": a["xy_now"], "future": a["future"]}
                    for a in agents],
        "meta": {**planning["meta"], "agents": len(agents), "agent_radius_m": RADIUS_M},
    }
