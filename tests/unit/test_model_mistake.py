"""parts.common.model_mistake keeps its model's latest outputs (one run per check): grade-batch asks from
several threads at once, each with its own check's inputs, and each must be judged on its own inputs."""
import sys
import threading

import torch

from autograder.parts.common import model_mistake


def test_threads_asking_at_once_each_get_their_own_inputs_outputs():
    runs = []

    def model(inputs):
        runs.append(1)
        return {"y": inputs["x"] * 2}

    mistake = model_mistake("doubled", model)
    failures = []

    def ask(value):
        inputs = {"x": torch.full((3,), float(value))}
        for _ in range(300):
            right = mistake.detect(inputs, "y", torch.full((3,), 2.0 * value), None)
            wrong = mistake.detect(inputs, "y", torch.full((3,), 2.0 * value + 1), None)
            if not right or wrong:
                failures.append(value)

    threads = [threading.Thread(target=ask, args=(v,)) for v in range(1, 7)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch between any two bytecodes: a race shows on every run
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not failures


def test_the_model_runs_once_for_every_output_of_one_check():
    runs = []

    def model(inputs):
        runs.append(1)
        return {"a": inputs["x"], "b": inputs["x"] + 1}

    mistake = model_mistake("h", model)
    inputs = {"x": torch.zeros(2)}
    assert mistake.detect(inputs, "a", torch.zeros(2), None) and mistake.detect(inputs, "b", torch.ones(2), None)
    assert len(runs) == 1
    assert mistake.detect({"x": torch.zeros(2)}, "a", torch.zeros(2), None) and len(runs) == 2  # other inputs
