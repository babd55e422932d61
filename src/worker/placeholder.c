/* The worker library; filled by the worker modules. */
