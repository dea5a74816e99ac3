/* Petrel's version: `petrel --version`, the API's vmm_version. */
#ifndef PETREL_VERSION_H
#define PETREL_VERSION_H

#define PETREL_VERSION "0.2.0"

#endif
