"""The application layer: one org's unit of work (load once -> decide, pure -> commit each kind of
row once, the answer recorded by the step's business key), used by the activities, the CLI and
the simulator alike.
Below it db/ maps rows and domain/ decides; above it activities/ and workers/ call it."""
