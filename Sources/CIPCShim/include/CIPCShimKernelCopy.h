// Shim declarations for the kernel one-copy / zero-copy mechanisms (implemented in ../kernelcopy.c).
#pragma once
