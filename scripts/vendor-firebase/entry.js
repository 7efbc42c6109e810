// The part of the Firebase JS SDK the opt-in widget uses: an app, and messaging's token calls.
// scripts/vendor-firebase.sh bundles this file into notifier/static/vendor/firebase/.
export { initializeApp } from "firebase/app";
export { deleteToken, getMessaging, getToken, isSupported } from "firebase/messaging";
