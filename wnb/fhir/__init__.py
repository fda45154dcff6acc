"""FHIR R4: reading Appointments, writing Flags, Tasks and Observations, and the bulk export."""
