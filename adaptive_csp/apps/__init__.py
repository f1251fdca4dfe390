"""Applications built on the runtime and the simulator, the way a user would build them.

- :mod:`.conveyor` — a simulated conveyor-belt camera (Fashion-MNIST items on a dark belt);
- :mod:`.story` — the demo's simulated day: the same frames through a policy and ``static-max``;
- :mod:`.score` — what a user gets: "right and on time" and "right when answered", item-bootstrap intervals;
- :mod:`.hindsight` — the simulator's oracle and each arm's replayed schedule beside the demo's arms;
- :mod:`.demo` — ``adaptive-csp demo``; :mod:`.camera` — the demo on real frames and sensors;
- :mod:`.live`, :mod:`.figure` — its live terminal view and its picture.
"""

from adaptive_csp.apps.conveyor import Conveyor, Frame

__all__ = ["Conveyor", "Frame"]
