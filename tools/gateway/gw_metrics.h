/*  gw_metrics - the gateway's counters, rendered in Prometheus text format.
 *
 *  Requests are counted by route, method and status, and their durations
 *  fall into one latency histogram per route and method.  Route labels are
 *  the patterns of the route table ("/books/{item}"), never raw paths, so the
 *  number of series stays bounded whatever clients send.  The cluster's
 *  side (nodes alive by service, the broker's cache counters) comes from the
 *  broker's status reply, read at each scrape.
 *
 *  Ownership: gw_metrics_new returns metrics the caller destroys with
 *  gw_metrics_destroy.  Route and method labels are borrowed and must be
 *  static strings.  Every function may be called from any thread.
 */
#ifndef GW_METRICS_H_INCLUDED
#define GW_METRICS_H_INCLUDED

#include <jansson.h>

typedef struct _gw_metrics_t gw_metrics_t;

gw_metrics_t *gw_metrics_new (void);
void gw_metrics_destroy (gw_metrics_t **self_p);

//  Counts one answered request and its duration
void gw_metrics_record (gw_metrics_t *self, const char *route, const char *method,
                        int status, double seconds);
//  Counts a connection opened (+1) or closed (-1)
void gw_metrics_connection (gw_metrics_t *self, int delta);

//  Renders every metric.  cluster is the broker's status reply as JSON
//  (borrowed), or NULL when the broker did not answer.  Returns a malloc'd
//  string the caller frees.
char *gw_metrics_render (gw_metrics_t *self, const json_t *cluster);

#endif
