// Shim declarations for the SharedMemory mechanisms (implemented in ../sharedmemory.c).
#pragma once
