/* Libraries loaded with dlopen (dynlib.h). */
#include <dlfcn.h>
#include <errno.h>
#include <string.h>

#include "core/dynlib.h"

int dynlib_load(struct dynlib *l, void *table, struct err *e)
{
    if (l->handle)
        return 0;
    void *h = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return err_set(e, -ELIBACC, "cannot load %s, %s: %s (Debian: apt-get install %s)",
                       l->soname, l->what, dlerror(), l->package);
    void *found[l->nsyms ? l->nsyms : 1];
    for (unsigned i = 0; i < l->nsyms; i++) {
        if (!(found[i] = dlsym(h, l->syms[i].name))) {
            dlclose(h);
            return err_set(e, -ELIBACC, "%s has no %s (%s needs it)", l->soname,
                           l->syms[i].name, l->what);
        }
    }
    for (unsigned i = 0; i < l->nsyms; i++)
        memcpy((char *)table + l->syms[i].off, &found[i], sizeof(found[i]));
    l->handle = h;
    return 0;
}
