"""The engines layer: what coordinating the steps takes, beyond the steps themselves.

The choreography's events and adapters, the runs table every engine records in, the client that
starts and follows a run of any engine, and the hand-off of large run requests. Attached to the
functions that coordinate (orchestrator, tracker, monitor) and to the step functions, whose entry
points consume the choreography's events; the steps' own code needs only the shared layer
(``pipeline``).
"""
