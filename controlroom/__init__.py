"""The control room's side: it speaks to devices only through the MQTT contract, never ``hal``."""
