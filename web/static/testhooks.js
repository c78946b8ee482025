// Browser tests only: the API serves this file, and adds it to the page, only with
// PARLEY_WEB_TEST_HOOKS on. It reaches the page's connection and moves its clock.
import { testing } from "./main.js";

window.parleyTest = testing;
