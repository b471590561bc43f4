"""Plotting: HoloViews figures shared by the report (matplotlib PNGs), notebooks and dashboard (Bokeh)."""
