"""The activity API: its REST calls (api), values (models), ExeScript, a batch's plan
(plan), result polling (polling) and live output (live)."""
