// Shim declarations for the Queues mechanisms (implemented in ../queues.c).
#pragma once
