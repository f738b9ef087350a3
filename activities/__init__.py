"""Activities: the steps that touch the world (database, payment gateway, SMTP).

Each side effect is keyed by the workflow id (from the activity context) and the step name, and
recorded in our database, so a retried or re-run activity finds what it already did. The classes
are built with `activities.dependencies.Dependencies`; `activities.registry` lists them all.
"""
