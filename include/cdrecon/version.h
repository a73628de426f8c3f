/* cdrecon — the tool's version and the data contract's (docs/database.md
 * records both with every run). */
#ifndef CDRECON_VERSION_H
#define CDRECON_VERSION_H
#define CDRECON_VERSION "0.1.0"
#define CDRECON_CONTRACT_VERSION 2
#endif
