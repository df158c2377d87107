//! Rate limits per member per agent over minute, hour and day windows.
