"""The business's brand: name, logo, colour and contact phone, set by an admin at run time."""
