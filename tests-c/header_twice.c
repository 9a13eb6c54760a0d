/* Header hygiene: including livefeed.h twice (directly and through another header that
 * includes it) must compile cleanly: include guard, no duplicate typedefs or macros. */
#include <livefeed.h>
#include <livefeed.h>
#include "livefeed.h"

/* Something from the header must still be usable after the repeated includes. */
lf_result header_twice_check(void);
lf_result header_twice_check(void) {
    return lf_version_number() == LF_VERSION_NUMBER ? LF_RESULT_OK : LF_RESULT_WRONG_STATE;
}
