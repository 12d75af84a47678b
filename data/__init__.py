"""The ground floor: errors, time parsing, the regions catalog, intensity and price
readers, and the files GreenEpoch ships (package data beside these modules)."""
