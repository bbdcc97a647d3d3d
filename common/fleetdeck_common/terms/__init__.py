"""Interactive terminals between gateways and workers: the signed open request and the messages
on their channels (`wire`), the broker layout (`store`), the asciicast recording (`cast`)."""
